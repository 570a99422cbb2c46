"""The output process: the scheduler, the note ledger and the MIDI output in a process of their own.

    main process (livejam/output/remote.py)              output process (livejam/output/child.py)
    Dispatcher --submit/cancel--> OutputProcess ==commands==> command loop --> Scheduler thread
                                                                               --> ledger --> MIDI out
    recorder, screen, OSC <-- reader thread <==reports== (what was sent, counters, replies)

Why: in one process everything Python does (the status screen, OSC, the recording, the performer's
sampling) takes the GIL the scheduler thread waits for; issue 20 measured notes 13-37 ms late at
p99 that way. The performer decides its notes `lookahead_s` ahead, so they can be handed over
ahead of time to a process that does nothing but send them on time.

The output process ends every note it sent: when the main process dies (even SIGKILL: the command
pipe reads end-of-file) it sends the ledger's note-offs and exits; when it dies, the main process
reads end-of-file on the report pipe, says so in one line and stops. On JACK by default
(`--set scheduler.output_process=false` keeps the scheduler in the main process). On other transports than
JACK (the port must be connected by name from the main process) and on a virtual clock, the
scheduler runs in the main process as before (livejam/scheduler.py).
"""
