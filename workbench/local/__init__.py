"""The embedded default stack's local servers (model, Langfuse), each run as its own process."""
