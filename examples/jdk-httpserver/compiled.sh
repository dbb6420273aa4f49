#!/bin/sh
# compiled.sh PORT DIR: compile Server.java into DIR/classes with javac, then
# exec the JVM on the compiled class (`java -cp DIR/classes Server PORT`),
# as a deployed application runs: no compiler in the JVM that serves. The
# JVM is the program hangup starts, watches and stops.
set -eu
here=$(dirname "$0")
mkdir -p "$2/classes"
javac -J-XX:-UsePerfData -d "$2/classes" "$here/Server.java"
# -XX:-UsePerfData (javac too): every case's JVM is pid 2 or 3 in its own PID namespace
# while /tmp is shared; parallel cases would fight over /tmp/hsperfdata_root/2.
exec java -XX:-UsePerfData -cp "$2/classes" Server "$1"
