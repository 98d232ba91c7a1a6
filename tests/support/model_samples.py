"""What the model runtimes' tests send and expect back: one small module and the docstring patch a model
proposes for it (the same sample for Bedrock and the OpenAI-compatible runtime)."""

SAMPLE = "def add(a, b):\n    return a+b\n"
PATCH = """diff --git a/packages/agents/sample.py b/packages/agents/sample.py
--- a/packages/agents/sample.py
+++ b/packages/agents/sample.py
@@ -1,2 +1,3 @@
 def add(a, b):
+    \"\"\"Sum of a and b.\"\"\"
     return a+b
"""
