"""LoRA fine-tuning on the bot's own conversations; heavy imports live inside functions.

Used by ``bot`` only through the ``ChatBackend`` protocol, so ``import bot`` stays fast.
"""
