"""snnkit.viz"""
