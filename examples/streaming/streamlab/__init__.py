"""streamlab: a user project whose training data is read from files as the model trains (see ../README.md)."""
