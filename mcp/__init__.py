"""Shim so that `python -m mcp.test all` works from the project root; holds nothing else.

It shadows the official `mcp` SDK only for processes whose sys.path starts at the root,
which is why lib/ never imports the SDK and MCP servers never start with the root as cwd.
"""
