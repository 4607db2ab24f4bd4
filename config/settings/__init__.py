"""Settings modules: base (shared, env-driven), dev, test, production."""
