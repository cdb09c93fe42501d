"""Who is calling: API keys, Entra ID tokens, and the Caller the rest of the core sees."""
