"""Completion callbacks: who may be called (policy), how it is signed, how it is delivered."""
