"""The console's pages, one module each; `register(console)` adds a module's routes."""
