"""Adapters: the one place each that talks to AWS, GitHub, git and MCP servers; they return or raise, never print."""
