"""Data contracts and their validation with Great Expectations 1.x (imported lazily)."""
