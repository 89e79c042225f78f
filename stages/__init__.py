"""stages: the CodeCrafters "Build your own HTTP server" course, one idea per module."""
