"""The function-vector workbench (Todd et al., "Function Vectors in Large Language Models")."""
__version__ = "0.1.0"
