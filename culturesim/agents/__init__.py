"""The agent layer every kind shares: who is who (assignment, groups, models) and what an agent remembers."""
