"""snnkit.bats"""
