"""snnkit.s3gd"""
