"""Several populations in one model: :class:`World`.

A world holds named populations on one clock and one seed. A *population* has its own
states, transitions, subject factory and size (a :class:`~doge_datagen.DataOnlineGenerator`
describes it); an *entity table* (products, merchants) has a factory and a size but no
transitions. Subjects refer to each other (:meth:`World.pick`: uniformly, weighted by an
attribute, or by Zipf popularity, through the picking subject's own stream) and act on each
other (:meth:`World.send`: the receiver handles the message at the next tick, before its own
move). ``doc/populations.md`` has the design, and why a sharded run gives the one-process
run's events.
"""

from doge_datagen.populations.world import CREATED, Message, MessageEvent, Population, Ref, World

__all__ = ["CREATED", "Message", "MessageEvent", "Population", "Ref", "World"]
