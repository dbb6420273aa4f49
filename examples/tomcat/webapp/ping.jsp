<%-- /ping: answers at once; the "still serving" request. --%><%@ page contentType="text/plain" session="false" trimDirectiveWhitespaces="true" %>pong
