#!/bin/sh
# Starts Debian's Tomcat 10 (package tomcat10) in the foreground on
# 127.0.0.1:PORT with this folder's web application, everything it writes
# (conf, logs, work, temp) under BASE: `tomcat.sh PORT BASE`.
#
# Tomcat's own catalina.sh would run the JVM as its child; exec'ing java
# here makes the JVM the program hangup starts, stops (SIGTERM: Tomcat's
# shutdown hook) and traces.
set -eu
port=$1
base=$2
home=${CATALINA_HOME:-/usr/share/tomcat10}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$base/conf" "$base/logs" "$base/work" "$base/temp"
# The servlet container's defaults (the JSP servlet among them).
cp "$home/etc/web.xml" "$base/conf/web.xml"
# One connector, no shutdown port, no access log, no autodeploy: the
# smallest Tomcat that serves the one application at /.
cat > "$base/conf/server.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1">
  <Service name="Catalina">
    <Connector port="$port" address="127.0.0.1" protocol="HTTP/1.1"
               connectionTimeout="20000" />
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="$base/webapps" autoDeploy="false"
            unpackWARs="false">
        <Context path="" docBase="$here/webapp" />
      </Host>
    </Engine>
  </Service>
</Server>
XML
mkdir -p "$base/webapps"
# Everything logged goes to stderr, one line per record.
cat > "$base/conf/logging.properties" <<PROPS
handlers = java.util.logging.ConsoleHandler
.level = INFO
java.util.logging.ConsoleHandler.level = INFO
java.util.logging.ConsoleHandler.formatter = java.util.logging.SimpleFormatter
java.util.logging.SimpleFormatter.format = %4\$s %3\$s %5\$s%6\$s%n
PROPS

# -XX:-UsePerfData: every case's JVM is pid 2 in its own PID namespace while
# /tmp is shared, so cases at once fought over /tmp/hsperfdata_root/2 (and
# the loser warned that it was locked by another process).
exec java \
  -XX:-UsePerfData -Xshare:auto -XX:TieredStopAtLevel=1 -Xss512k \
  -Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager \
  -Djava.util.logging.config.file="$base/conf/logging.properties" \
  -Dcatalina.home="$home" -Dcatalina.base="$base" \
  -Djava.io.tmpdir="$base/temp" \
  -classpath "$home/bin/bootstrap.jar:$home/bin/tomcat-juli.jar" \
  org.apache.catalina.startup.Bootstrap start
