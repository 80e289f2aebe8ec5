"""Pure core: text, math and tensor logic. Nothing in this package imports verl."""
