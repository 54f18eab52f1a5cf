#!/bin/busybox sh
# Prints the greeting shipped in the image, then who is greeted (shell builtins only).
read -r greeting < /etc/greeting
echo "${greeting}, ${1:-world}!"
