"""The AI advisor's knowledge base: Markdown passages, Chinese-aware BM25 retrieval, and the answer-or-hand-off call.

kb = await asyncio.to_thread(KnowledgeBase.load, Path("config/knowledge"))   # once, at start-up (~1-2 s)
decision = kb.answer("证书快过期了怎么续期？")                                 # well under a millisecond
if decision.answer is None: ...hand off (decision.reason says why)...
else: ...reply with each of decision.answers (one passage, or two close ones), citing each one's source...
"""

from integrations.knowledge.decision import Decision, DecisionPolicy, Hit, Ranking, Reason, asks_about_pricing
from integrations.knowledge.knowledge_base import KnowledgeBase
from integrations.knowledge.loading import KnowledgeBaseError, Passage

__all__ = [
    "Decision",
    "DecisionPolicy",
    "Hit",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Passage",
    "Ranking",
    "Reason",
    "asks_about_pricing",
]
