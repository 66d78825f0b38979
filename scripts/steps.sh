# Sourced by the scripts that run inside another machine (vm-inside.sh, distro-inside.sh):
# step NAME COMMAND... runs COMMAND with its output in $out/NAME.txt and its exit status and
# duration appended to $out/steps.txt. A step never stops the sequence: every one is
# reported, and the host judges them.
step() {
    local name=$1 start rc
    shift
    start=$(date +%s)
    "$@" > "$out/$name.txt" 2>&1
    rc=$?
    echo "$name $rc $(( $(date +%s) - start ))" >> "$out/steps.txt"
}
