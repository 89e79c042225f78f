"""bench: reproducible benchmarks of core against Node.js and nginx."""
