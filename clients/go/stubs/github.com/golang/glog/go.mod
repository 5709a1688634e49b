module github.com/golang/glog
