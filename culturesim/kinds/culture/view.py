"""What the app shows of culture runs: the views every population of ideas has (app.ideas_view)."""

from app.ideas_view import register_idea_view

register_idea_view("culture")
