"""Built-in sound (`livejam run --sound`): both parts through a General MIDI soundfont synth
(pyfluidsynth) to the audio device (sounddevice). Optional, off the real-time MIDI path:
`synth` is the synth and its bounded note queue (renders offline too), `output` the audio
stream and the daemon add-on."""
