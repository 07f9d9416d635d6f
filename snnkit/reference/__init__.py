"""snnkit.reference"""
