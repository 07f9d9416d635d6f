"""snnkit.stbp"""
