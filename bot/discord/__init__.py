"""The Discord adapter (discord.py 2.x): gateway events and slash commands in, answers out.

discord.py types stay in this package; the core sees :class:`~bot.messages.IncomingMessage`.
The gateway process (``deskbot discord``) holds the only gateway connection; workers answer
through Discord's REST API (:class:`~bot.discord.rest.DiscordREST`).
"""
