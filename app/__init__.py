"""The Dash app for exploring runs; it arrives with its own issue."""
