"""What the app shows of exposure runs: the views every population of ideas has (app.ideas_view),
read with trials as steps."""

from app.ideas_view import register_idea_view

register_idea_view("exposure", note="exposure trials are independent; read steps as trials")
