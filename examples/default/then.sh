# Shown after the traffic of `make run`.
echo "== router neighbours =="
ip -n r neigh show
echo "== router routes =="
ip -n r route show
echo "== router link counters =="
ip -n r -s link show r-h2
