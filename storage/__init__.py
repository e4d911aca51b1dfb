"""Everything that knows MongoDB lives in this package."""
