"""core: the production HTTP/1.1 server that the stages grow into."""
