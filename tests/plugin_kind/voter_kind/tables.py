"""The voter kind's own per-step table (beside the core's ideas and prompts, which it leaves empty).

The model writes it and the view reads it; both take the schema from here, never from each other.

``opinions``: one row per agent per step, the agent's opinion at the end of the step and the
agent whose opinion it took during the step (``copied_from``; null when it took none: an agent
with nobody to listen to under the voter rule, or one no birth landed on under the Moran rule).
Under the voter rule an agent that copies a neighbour holding its own opinion still has
``copied_from`` set: who was listened to is recorded, whether or not the opinion changed.
"""

import polars as pl

OPINIONS_SCHEMA = {"step": pl.Int64, "agent_id": pl.Int64, "opinion": pl.Int64, "copied_from": pl.Int64}

TABLES = {"opinions": OPINIONS_SCHEMA}
