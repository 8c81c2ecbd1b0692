"""Function-calling tools the agent may call, one module or package each, and their registry.

Tools are plain typed async functions (:mod:`tools.base` builds their schemas and holds the
registry); identity and permissions come from the run context, never from the model.
``documents`` searches the knowledge base, ``sql`` runs read-only queries, ``stocks`` reads
quotes, ``classifier`` classifies comments. Their exceptions are in :mod:`tools.errors`.
:mod:`tools.chat_backend` is the model seam (the ``ChatBackend`` Protocol in Chat
Completions wire format) that the agent and the language-model classifier both call.
"""
