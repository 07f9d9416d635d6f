"""snnkit.widgets"""
