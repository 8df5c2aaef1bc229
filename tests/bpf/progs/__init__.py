"""C sources, committed objects and shared frames of the ELF-loader tests."""
