"""The gate's own object construction: the pickle and skops readers resolve names through one table of
allowlisted objects, and every object a model is made of is built here, from state validated first."""
