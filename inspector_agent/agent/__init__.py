"""The LangGraph agent: typed state, deterministic routing, nodes, graph and a turn-level service."""
