"""Image and file I/O: what comes in from and goes out to the user's files."""
