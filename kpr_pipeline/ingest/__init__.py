"""Loading landing files into the warehouse: plain Python on top of the domain rules and the warehouse."""
