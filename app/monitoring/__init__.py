"""Monitoring against falling (back) into poverty (防止返贫致贫监测): cases, alerts, rules."""
