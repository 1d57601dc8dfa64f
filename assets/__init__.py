"""Asset and check definitions, one module per pipeline stage (ingestion, refvie, training, evaluation).

Modules here only declare assets and checks; each stage's logic lives in the `kiwi_platform`
package of the same name. They never import each other: dependencies are declared by asset key.
"""
