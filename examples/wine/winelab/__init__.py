"""winelab: a tiny user project that trains with tfrun without forking it (see ../README.md)."""
