// <- the default export is not a network
export default "not a network";
