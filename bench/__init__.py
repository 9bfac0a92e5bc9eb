"""Performance claim scripts: each one runs the real system and prints what it measured."""
