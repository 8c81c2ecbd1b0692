"""Function-calling tools the agent may call, one module each, and their registry.

Tools are plain typed async functions; identity and permissions come from the run
context, never from the model. (The tools arrive with the agent; see the README.)
"""
