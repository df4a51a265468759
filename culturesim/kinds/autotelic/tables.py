"""The autotelic kind's own per-step tables: every episode played, and every agent's goal
repertoire after the step. Model, measures and view take the schemas from here."""

import polars as pl

EPISODES_SCHEMA = {
    "run_id": pl.String,
    "step": pl.Int64,
    "agent_id": pl.Int64,
    "episode": pl.Int64,  # the agent's episode number in the run, from 1
    "game": pl.String,  # "<index>:<sha256 prefix of the game file>"
    "goal": pl.String,
    "goal_id": pl.String,
    "source": pl.String,  # own | social | imagine | explore
    "subgoals": pl.List(pl.String),
    "actions": pl.List(pl.String),
    "replayed": pl.Int64,
    "relabeled": pl.List(pl.String),
    "relabel_status": pl.String,  # ok | unparsable | failed
    "llm_reward": pl.Boolean,
    "reward_status": pl.String,  # ok | unparsable | failed | none (no goal)
    "oracle_success": pl.Boolean,  # null where the oracle cannot read the goal
    "eval_achieved": pl.List(pl.String),
    "eval_total": pl.Int64,
    "won": pl.Boolean,
    "lost": pl.Boolean,
}

REPERTOIRE_SCHEMA = {
    "run_id": pl.String,
    "step": pl.Int64,
    "agent_id": pl.Int64,
    "goal_id": pl.String,
    "goal": pl.String,
    "subgoals": pl.List(pl.String),
    "source": pl.String,  # relabel | imagine | social
    "origin": pl.String,  # idea_id of the row that first produced the goal
    "from_agent": pl.Int64,
    "first_step": pl.Int64,
    "attempts": pl.Int64,
    "successes": pl.Int64,
    "competence": pl.Float64,
    "mastered": pl.Boolean,
    "trajectory_len": pl.Int64,
}

TABLES = {"episodes": EPISODES_SCHEMA, "repertoire": REPERTOIRE_SCHEMA}
