"""Metrics, predictions and evaluation reports."""
