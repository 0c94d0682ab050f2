"""Fraud detection rules engine: micro (time-window) and macro (graph) rules over Kinesis."""
