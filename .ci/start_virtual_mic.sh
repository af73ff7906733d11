#!/usr/bin/env bash
# Start a PulseAudio virtual microphone for the live tests: a null sink "vmic" (16 kHz mono) whose monitor
# is the default source, so `paplay --device=vmic x.wav` is what the default input device records.
# Idempotent (reuses a running server and an existing vmic sink). Always exits 0: where PulseAudio is
# missing or cannot start it prints why, and the live PortAudio test skips.
set -u

say() { echo "start_virtual_mic: $*"; }

if ! command -v pulseaudio >/dev/null 2>&1 || ! command -v pactl >/dev/null 2>&1; then
  say "pulseaudio/pactl not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins libportaudio2); skipping"
  exit 0
fi

if ! pactl info >/dev/null 2>&1; then
  # -n: no default.pa, only the modules named here. As root PulseAudio warns but runs (no --system needed).
  pulseaudio --daemonize=yes --exit-idle-time=-1 -n \
    --load="module-null-sink sink_name=vmic rate=16000 channels=1" \
    --load=module-native-protocol-unix >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do
    pactl info >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! pactl info >/dev/null 2>&1; then
    say "PulseAudio did not start (try: pulseaudio -n -vvv); skipping"
    exit 0
  fi
  say "started PulseAudio"
fi

if ! pactl list short sinks 2>/dev/null | awk '{print $2}' | grep -qx vmic; then
  if ! pactl load-module module-null-sink sink_name=vmic rate=16000 channels=1 >/dev/null 2>&1; then
    say "could not create the null sink vmic; skipping"
    exit 0
  fi
fi

if ! pactl set-default-source vmic.monitor 2>/dev/null; then
  say "could not make vmic.monitor the default source; skipping"
  exit 0
fi
say "virtual microphone ready: play into it with 'paplay --device=vmic FILE.wav'; it records from the default source vmic.monitor"
exit 0
