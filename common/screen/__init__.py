"""Pure pieces of screen sharing that both sides use: rectangles and frame layout."""
